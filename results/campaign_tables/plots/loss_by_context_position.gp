# Renders loss_by_context_position.png from loss_by_context_position.dat; run from this folder: gnuplot loss_by_context_position.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "loss_by_context_position.png"
set title "held-out loss by position in the context"
set xlabel "position in window + 1"
set ylabel "bits per byte"
set key left top
set grid
set logscale x
set logscale y
plot "loss_by_context_position.dat" index 0 using 1:2 with linespoints pointtype 7 title "full/seed=0", \
     "loss_by_context_position.dat" index 1 using 1:2 with linespoints pointtype 7 title "full/seed=1", \
     "loss_by_context_position.dat" index 2 using 1:2 with linespoints pointtype 7 title "full/seed=2", \
     "loss_by_context_position.dat" index 3 using 1:2 with linespoints pointtype 7 title "no_local/seed=0", \
     "loss_by_context_position.dat" index 4 using 1:2 with linespoints pointtype 7 title "no_local/seed=1", \
     "loss_by_context_position.dat" index 5 using 1:2 with linespoints pointtype 7 title "no_local/seed=2", \
     "loss_by_context_position.dat" index 6 using 1:2 with linespoints pointtype 7 title "no_global/seed=0", \
     "loss_by_context_position.dat" index 7 using 1:2 with linespoints pointtype 7 title "no_global/seed=1", \
     "loss_by_context_position.dat" index 8 using 1:2 with linespoints pointtype 7 title "no_global/seed=2", \
     "loss_by_context_position.dat" index 9 using 1:2 with linespoints pointtype 7 title "cross_patch/seed=0", \
     "loss_by_context_position.dat" index 10 using 1:2 with linespoints pointtype 7 title "cross_patch/seed=1", \
     "loss_by_context_position.dat" index 11 using 1:2 with linespoints pointtype 7 title "cross_patch/seed=2", \
     "loss_by_context_position.dat" index 12 using 1:2 with linespoints pointtype 7 title "conv_encoder/seed=0", \
     "loss_by_context_position.dat" index 13 using 1:2 with linespoints pointtype 7 title "conv_encoder/seed=1", \
     "loss_by_context_position.dat" index 14 using 1:2 with linespoints pointtype 7 title "conv_encoder/seed=2", \
     "loss_by_context_position.dat" index 15 using 1:2 with linespoints pointtype 7 title "patch4/seed=0", \
     "loss_by_context_position.dat" index 16 using 1:2 with linespoints pointtype 7 title "patch4/seed=1", \
     "loss_by_context_position.dat" index 17 using 1:2 with linespoints pointtype 7 title "patch4/seed=2", \
     "loss_by_context_position.dat" index 18 using 1:2 with linespoints pointtype 7 title "patch16/seed=0", \
     "loss_by_context_position.dat" index 19 using 1:2 with linespoints pointtype 7 title "patch16/seed=1", \
     "loss_by_context_position.dat" index 20 using 1:2 with linespoints pointtype 7 title "patch16/seed=2", \
     "loss_by_context_position.dat" index 21 using 1:2 with linespoints pointtype 7 title "patch32/seed=0", \
     "loss_by_context_position.dat" index 22 using 1:2 with linespoints pointtype 7 title "patch32/seed=1", \
     "loss_by_context_position.dat" index 23 using 1:2 with linespoints pointtype 7 title "patch32/seed=2", \
     "loss_by_context_position.dat" index 24 using 1:2 with linespoints pointtype 7 title "split_global_heavy/seed=0", \
     "loss_by_context_position.dat" index 25 using 1:2 with linespoints pointtype 7 title "split_global_heavy/seed=1", \
     "loss_by_context_position.dat" index 26 using 1:2 with linespoints pointtype 7 title "split_global_heavy/seed=2", \
     "loss_by_context_position.dat" index 27 using 1:2 with linespoints pointtype 7 title "split_local_heavy/seed=0", \
     "loss_by_context_position.dat" index 28 using 1:2 with linespoints pointtype 7 title "split_local_heavy/seed=1", \
     "loss_by_context_position.dat" index 29 using 1:2 with linespoints pointtype 7 title "split_local_heavy/seed=2"
