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
     (x < 7.79499 ? 2.5691e+10 * x : 2.00261e+11) with lines dashtype 2 title "roof bfloat16, 1 threads: 200 GFLOP/s, 25.7 GB/s", \
     (x < 5.62526 ? 7.38849e+10 * x : 4.15622e+11) with lines dashtype 2 title "roof bfloat16, 2 threads: 416 GFLOP/s, 73.9 GB/s", \
     (x < 3.4896 ? 2.5691e+10 * x : 8.96511e+10) with lines dashtype 2 title "roof float32, 1 threads: 89.7 GFLOP/s, 25.7 GB/s", \
     (x < 4.38715 ? 3.91105e+10 * x : 1.71584e+11) with lines dashtype 2 title "roof float32, 2 threads: 172 GFLOP/s, 39.1 GB/s"
