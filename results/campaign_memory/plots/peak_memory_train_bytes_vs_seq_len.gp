# Renders peak_memory_train_bytes_vs_seq_len.png from peak_memory_train_bytes_vs_seq_len.dat; run from this folder: gnuplot peak_memory_train_bytes_vs_seq_len.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "peak_memory_train_bytes_vs_seq_len.png"
set title "Peak training memory, same attention kernel"
set xlabel "seq_len"
set ylabel "peak_memory_train_bytes"
set key left top
set grid
set logscale x
set logscale y
plot "peak_memory_train_bytes_vs_seq_len.dat" index 0 using 1:2 with linespoints pointtype 7 title "transformer_explicit", \
     "peak_memory_train_bytes_vs_seq_len.dat" index 1 using 1:2 with linespoints pointtype 7 title "megabyte_explicit", \
     "peak_memory_train_bytes_vs_seq_len.dat" index 2 using 1:2 with linespoints pointtype 7 title "transformer_sdpa", \
     "peak_memory_train_bytes_vs_seq_len.dat" index 3 using 1:2 with linespoints pointtype 7 title "megabyte_sdpa"
