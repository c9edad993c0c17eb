# Renders bpb_vs_patch_patch.png from bpb_vs_patch_patch.dat; run from this folder: gnuplot bpb_vs_patch_patch.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "bpb_vs_patch_patch.png"
set title "Held-out bpb against patch size (compute-matched, context 256)"
set xlabel "patch.patch"
set ylabel "bpb"
set key left top
set grid
plot "bpb_vs_patch_patch.dat" index 0 using 1:2 with linespoints pointtype 7 title "patch"
