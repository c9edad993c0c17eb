# Renders roofline.png from roofline.dat; run from this folder: gnuplot roofline.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 1300,650 noenhanced font "sans,10"
} else {
  set terminal png size 1300,650 noenhanced
}
set output "roofline.png"
set title "roofline: achieved FLOP/s against arithmetic intensity"
set xlabel "arithmetic intensity (FLOPs per byte of memory traffic)"
set ylabel "achieved FLOP/s"
set key outside right top
set grid
set logscale xy
set samples 400
set xrange [0.166667:3]
plot "roofline.dat" index 0 using 1:2 with points pointtype 9 title "perceiver_ar_1024 generate"
