# Renders train_loss_vs_steps.png from train_loss_vs_steps.dat; run from this folder: gnuplot train_loss_vs_steps.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "train_loss_vs_steps.png"
set title "training loss against steps"
set xlabel "step"
set ylabel "bits per byte"
set key left top
set grid
set logscale x
set logscale y
plot "train_loss_vs_steps.dat" index 0 using 1:2 with linespoints pointtype 7 title "transformer@lr=0.0405/seed=0", \
     "train_loss_vs_steps.dat" index 1 using 1:2 with linespoints pointtype 7 title "transformer@lr=0.0405/seed=0 (held-out)", \
     "train_loss_vs_steps.dat" index 2 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0405/seed=0", \
     "train_loss_vs_steps.dat" index 3 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0405/seed=0 (held-out)", \
     "train_loss_vs_steps.dat" index 4 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0405/seed=0", \
     "train_loss_vs_steps.dat" index 5 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0405/seed=0 (held-out)", \
     "train_loss_vs_steps.dat" index 6 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0405/seed=0", \
     "train_loss_vs_steps.dat" index 7 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0405/seed=0 (held-out)"
