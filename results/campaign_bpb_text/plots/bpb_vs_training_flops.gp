# Renders bpb_vs_training_flops.png from bpb_vs_training_flops.dat; run from this folder: gnuplot bpb_vs_training_flops.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "bpb_vs_training_flops.png"
set title "text: held-out bpb against training FLOPs (mean and std over seeds; dashed: n-gram orders 1-6)"
set xlabel "run.train.flop_budget"
set ylabel "bpb"
set key left top
set grid
set logscale x
plot "bpb_vs_training_flops.dat" index 0 using 1:2:3 with yerrorlines pointtype 7 title "transformer", \
     "bpb_vs_training_flops.dat" index 1 using 1:2:3 with yerrorlines pointtype 7 title "megabyte", \
     "bpb_vs_training_flops.dat" index 2 using 1:2:3 with yerrorlines pointtype 7 title "megabyte_paper", \
     "bpb_vs_training_flops.dat" index 3 using 1:2:3 with yerrorlines pointtype 7 title "perceiver_ar", \
     4.5480600887481586 with lines dashtype 2 title "ngram.order=1", \
     3.6760735917954843 with lines dashtype 2 title "ngram.order=2", \
     2.9448484149506324 with lines dashtype 2 title "ngram.order=3", \
     2.4192107494485606 with lines dashtype 2 title "ngram.order=4", \
     2.0269836403205495 with lines dashtype 2 title "ngram.order=5", \
     1.8385728964979968 with lines dashtype 2 title "ngram.order=6"
