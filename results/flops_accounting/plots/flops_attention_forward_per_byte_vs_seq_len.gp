# Renders flops_attention_forward_per_byte_vs_seq_len.png from flops_attention_forward_per_byte_vs_seq_len.dat; run from this folder: gnuplot flops_attention_forward_per_byte_vs_seq_len.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "flops_attention_forward_per_byte_vs_seq_len.png"
set title "Attention FLOPs per byte against context"
set xlabel "seq_len"
set ylabel "flops_attention_forward_per_byte"
set key left top
set grid
set logscale x
set logscale y
plot "flops_attention_forward_per_byte_vs_seq_len.dat" index 0 using 1:2 with linespoints pointtype 7 title "megabyte", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 1 using 1:2 with linespoints pointtype 7 title "transformer", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 2 using 1:2 with linespoints pointtype 7 title "perceiver_ar", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 3 using 1:2 with linespoints pointtype 7 title "transformer gpt3_350M.seq_len=1024", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 4 using 1:2 with linespoints pointtype 7 title "transformer gpt3_350M.seq_len=4096", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 5 using 1:2 with linespoints pointtype 7 title "transformer gpt3_350M.seq_len=16384", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 6 using 1:2 with linespoints pointtype 7 title "transformer gpt3_350M.seq_len=65536", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 7 using 1:2 with linespoints pointtype 7 title "transformer gpt3_350M.seq_len=262144", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 8 using 1:2 with linespoints pointtype 7 title "transformer gpt3_350M.seq_len=1048576", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 9 using 1:2 with linespoints pointtype 7 title "transformer gpt3_1p3B.seq_len=1024", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 10 using 1:2 with linespoints pointtype 7 title "transformer gpt3_1p3B.seq_len=4096", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 11 using 1:2 with linespoints pointtype 7 title "transformer gpt3_1p3B.seq_len=16384", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 12 using 1:2 with linespoints pointtype 7 title "transformer gpt3_1p3B.seq_len=65536", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 13 using 1:2 with linespoints pointtype 7 title "transformer gpt3_1p3B.seq_len=262144", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 14 using 1:2 with linespoints pointtype 7 title "transformer gpt3_1p3B.seq_len=1048576", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 15 using 1:2 with linespoints pointtype 7 title "megabyte megabyte_1p3B_350M_P8.seq_len=1024", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 16 using 1:2 with linespoints pointtype 7 title "megabyte megabyte_1p3B_350M_P8.seq_len=4096", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 17 using 1:2 with linespoints pointtype 7 title "megabyte megabyte_1p3B_350M_P8.seq_len=16384", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 18 using 1:2 with linespoints pointtype 7 title "megabyte megabyte_1p3B_350M_P8.seq_len=65536", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 19 using 1:2 with linespoints pointtype 7 title "megabyte megabyte_1p3B_350M_P8.seq_len=262144", \
     "flops_attention_forward_per_byte_vs_seq_len.dat" index 20 using 1:2 with linespoints pointtype 7 title "megabyte megabyte_1p3B_350M_P8.seq_len=1048576"
