# Renders attention_forward_ms_vs_seq_len.png from attention_forward_ms_vs_seq_len.dat; run from this folder: gnuplot attention_forward_ms_vs_seq_len.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "attention_forward_ms_vs_seq_len.png"
set title "Measured attention time per sequence, N = P^3"
set xlabel "seq_len"
set ylabel "attention_forward_ms"
set key left top
set grid
set logscale x
set logscale y
plot "attention_forward_ms_vs_seq_len.dat" index 0 using 1:2 with linespoints pointtype 7 title "transformer_sdpa", \
     "attention_forward_ms_vs_seq_len.dat" index 1 using 1:2 with linespoints pointtype 7 title "transformer_explicit", \
     "attention_forward_ms_vs_seq_len.dat" index 2 using 1:2 with linespoints pointtype 7 title "megabyte_sdpa", \
     "attention_forward_ms_vs_seq_len.dat" index 3 using 1:2 with linespoints pointtype 7 title "megabyte_explicit"
