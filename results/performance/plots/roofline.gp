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
set xrange [0.166667:744.835]
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
     (x < 27.6587 ? 2.92207e+10 * x : 8.08205e+11) with lines dashtype 2 title "roof bfloat16, 1 threads: 808 GFLOP/s, 29.2 GB/s", \
     (x < 54.4636 ? 3.09093e+10 * x : 1.68343e+12) with lines dashtype 2 title "roof bfloat16, 2 threads: 1683 GFLOP/s, 30.9 GB/s", \
     (x < 5.58154 ? 2.92207e+10 * x : 1.63096e+11) with lines dashtype 2 title "roof float32, 1 threads: 163 GFLOP/s, 29.2 GB/s", \
     (x < 10.4912 ? 2.92207e+10 * x : 3.06561e+11) with lines dashtype 2 title "roof float32, 2 threads: 307 GFLOP/s, 29.2 GB/s"
