# Renders forward_ms_vs_seq_len.png from forward_ms_vs_seq_len.dat; run from this folder: gnuplot forward_ms_vs_seq_len.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "forward_ms_vs_seq_len.png"
set title "Measured forward time (depth-1 models, SDPA) against context"
set xlabel "seq_len"
set ylabel "forward_ms"
set key left top
set grid
set logscale x
set logscale y
plot "forward_ms_vs_seq_len.dat" index 0 using 1:2 with linespoints pointtype 7 title "transformer", \
     "forward_ms_vs_seq_len.dat" index 1 using 1:2 with linespoints pointtype 7 title "megabyte megabyte.patch=cbrt", \
     "forward_ms_vs_seq_len.dat" index 2 using 1:2 with linespoints pointtype 7 title "megabyte megabyte.patch=8"
