# Renders flops_forward_per_byte_vs_seq_len.png from flops_forward_per_byte_vs_seq_len.dat; run from this folder: gnuplot flops_forward_per_byte_vs_seq_len.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "flops_forward_per_byte_vs_seq_len.png"
set title "Forward FLOPs per byte against context (1024: Transformer 350M, 2048: Transformer 1.3B, [2048,1024]: MEGABYTE P=8)"
set xlabel "seq_len"
set ylabel "flops_forward_per_byte"
set key left top
set grid
set logscale x
set logscale y
plot "flops_forward_per_byte_vs_seq_len.dat" index 0 using 1:2 with linespoints pointtype 7 title "1024", \
     "flops_forward_per_byte_vs_seq_len.dat" index 1 using 1:2 with linespoints pointtype 7 title "2048", \
     "flops_forward_per_byte_vs_seq_len.dat" index 2 using 1:2 with linespoints pointtype 7 title "[2048,1024]"
