# Renders flops_attention_forward_per_byte_vs_seq_len.png from flops_attention_forward_per_byte_vs_seq_len.dat; run from this folder: gnuplot flops_attention_forward_per_byte_vs_seq_len.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "flops_attention_forward_per_byte_vs_seq_len.png"
set title "Attention FLOPs per byte, N = P^3"
set xlabel "seq_len"
set ylabel "flops_attention_forward_per_byte"
set key left top
set grid
set logscale x
set logscale y
plot "flops_attention_forward_per_byte_vs_seq_len.dat" index 0 using 1:2 with linespoints pointtype 7 title "transformer_sdpa", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 1 using 1:2 with linespoints pointtype 7 title "transformer_explicit", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 2 using 1:2 with linespoints pointtype 7 title "megabyte_sdpa", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 3 using 1:2 with linespoints pointtype 7 title "megabyte_explicit"
