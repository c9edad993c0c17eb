# Renders train_loss_vs_flops.png from train_loss_vs_flops.dat; run from this folder: gnuplot train_loss_vs_flops.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "train_loss_vs_flops.png"
set title "training loss against training FLOPs"
set xlabel "train_flops"
set ylabel "bits per byte"
set key left top
set grid
set logscale x
set logscale y
plot "train_loss_vs_flops.dat" index 0 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0135/seed=0", \
     "train_loss_vs_flops.dat" index 1 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0135/seed=0 (held-out)", \
     "train_loss_vs_flops.dat" index 2 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0135/seed=1", \
     "train_loss_vs_flops.dat" index 3 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0135/seed=1 (held-out)", \
     "train_loss_vs_flops.dat" index 4 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0135/seed=2", \
     "train_loss_vs_flops.dat" index 5 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0135/seed=2 (held-out)", \
     "train_loss_vs_flops.dat" index 6 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0405/seed=0", \
     "train_loss_vs_flops.dat" index 7 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0405/seed=0 (held-out)", \
     "train_loss_vs_flops.dat" index 8 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0405/seed=1", \
     "train_loss_vs_flops.dat" index 9 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0405/seed=1 (held-out)", \
     "train_loss_vs_flops.dat" index 10 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0405/seed=2", \
     "train_loss_vs_flops.dat" index 11 using 1:2 with linespoints pointtype 7 title "megabyte@lr=0.0405/seed=2 (held-out)", \
     "train_loss_vs_flops.dat" index 12 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0135/seed=0", \
     "train_loss_vs_flops.dat" index 13 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0135/seed=0 (held-out)", \
     "train_loss_vs_flops.dat" index 14 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0135/seed=1", \
     "train_loss_vs_flops.dat" index 15 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0135/seed=1 (held-out)", \
     "train_loss_vs_flops.dat" index 16 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0135/seed=2", \
     "train_loss_vs_flops.dat" index 17 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0135/seed=2 (held-out)", \
     "train_loss_vs_flops.dat" index 18 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0405/seed=0", \
     "train_loss_vs_flops.dat" index 19 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0405/seed=0 (held-out)", \
     "train_loss_vs_flops.dat" index 20 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0405/seed=1", \
     "train_loss_vs_flops.dat" index 21 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0405/seed=1 (held-out)", \
     "train_loss_vs_flops.dat" index 22 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0405/seed=2", \
     "train_loss_vs_flops.dat" index 23 using 1:2 with linespoints pointtype 7 title "megabyte_paper@lr=0.0405/seed=2 (held-out)", \
     "train_loss_vs_flops.dat" index 24 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0135/seed=0", \
     "train_loss_vs_flops.dat" index 25 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0135/seed=0 (held-out)", \
     "train_loss_vs_flops.dat" index 26 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0135/seed=1", \
     "train_loss_vs_flops.dat" index 27 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0135/seed=1 (held-out)", \
     "train_loss_vs_flops.dat" index 28 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0135/seed=2", \
     "train_loss_vs_flops.dat" index 29 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0135/seed=2 (held-out)", \
     "train_loss_vs_flops.dat" index 30 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0405/seed=0", \
     "train_loss_vs_flops.dat" index 31 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0405/seed=0 (held-out)", \
     "train_loss_vs_flops.dat" index 32 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0405/seed=1", \
     "train_loss_vs_flops.dat" index 33 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0405/seed=1 (held-out)", \
     "train_loss_vs_flops.dat" index 34 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0405/seed=2", \
     "train_loss_vs_flops.dat" index 35 using 1:2 with linespoints pointtype 7 title "perceiver_ar@lr=0.0405/seed=2 (held-out)"
