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
     (x < 2.89557 ? 2.9113e+10 * x : 8.42987e+10) with lines dashtype 2 title "roof bfloat16, 1 threads: 84.3 GFLOP/s, 29.1 GB/s", \
     (x < 2.87471 ? 5.80137e+10 * x : 1.66772e+11) with lines dashtype 2 title "roof bfloat16, 2 threads: 167 GFLOP/s, 58.0 GB/s", \
     (x < 5.63448 ? 2.9113e+10 * x : 1.64037e+11) with lines dashtype 2 title "roof float32, 1 threads: 164 GFLOP/s, 29.1 GB/s", \
     (x < 5.54723 ? 5.80137e+10 * x : 3.21815e+11) with lines dashtype 2 title "roof float32, 2 threads: 322 GFLOP/s, 58.0 GB/s"
