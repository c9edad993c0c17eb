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
set xrange [0.166667:759.141]
plot "roofline.dat" index 0 using 1:2 with points pointtype 7 title "megabyte_1024 train step", \
     "roofline.dat" index 1 using 1:2 with points pointtype 9 title "megabyte_1024 generate", \
     "roofline.dat" index 2 using 1:2 with points pointtype 7 title "transformer_1024 train step", \
     "roofline.dat" index 3 using 1:2 with points pointtype 9 title "transformer_1024 generate", \
     "roofline.dat" index 4 using 1:2 with points pointtype 7 title "perceiver_ar_1024 train step", \
     "roofline.dat" index 5 using 1:2 with points pointtype 9 title "perceiver_ar_1024 generate", \
     "roofline.dat" index 6 using 1:2 with points pointtype 7 title "megabyte_readme train step", \
     "roofline.dat" index 7 using 1:2 with points pointtype 9 title "megabyte_readme generate", \
     "roofline.dat" index 8 using 1:2 with points pointtype 7 title "megabyte_3stage train step", \
     "roofline.dat" index 9 using 1:2 with points pointtype 9 title "megabyte_3stage generate", \
     (x < 8.34931 ? 2.54479e+10 * x : 2.12473e+11) with lines dashtype 2 title "roof bfloat16, 1 threads: 212 GFLOP/s, 25.4 GB/s", \
     (x < 14.5655 ? 3.01458e+10 * x : 4.39089e+11) with lines dashtype 2 title "roof bfloat16, 2 threads: 439 GFLOP/s, 30.1 GB/s", \
     (x < 3.91527 ? 2.54479e+10 * x : 9.96356e+10) with lines dashtype 2 title "roof float32, 1 threads: 99.6 GFLOP/s, 25.4 GB/s", \
     (x < 6.1794 ? 3.01458e+10 * x : 1.86283e+11) with lines dashtype 2 title "roof float32, 2 threads: 186 GFLOP/s, 30.1 GB/s"
