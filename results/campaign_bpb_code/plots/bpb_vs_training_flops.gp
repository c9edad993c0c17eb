# Renders bpb_vs_training_flops.png from bpb_vs_training_flops.dat; run from this folder: gnuplot bpb_vs_training_flops.gp
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 900,600 noenhanced font "sans,10"
} else {
  set terminal png size 900,600 noenhanced
}
set output "bpb_vs_training_flops.png"
set title "code: held-out bpb against training FLOPs (mean and std over seeds; dashed: n-gram orders 1-6)"
set xlabel "run.train.flop_budget"
set ylabel "bpb"
set key left top
set grid
set logscale x
plot "bpb_vs_training_flops.dat" index 0 using 1:2:3 with yerrorlines pointtype 7 title "transformer", \
     "bpb_vs_training_flops.dat" index 1 using 1:2:3 with yerrorlines pointtype 7 title "megabyte", \
     "bpb_vs_training_flops.dat" index 2 using 1:2:3 with yerrorlines pointtype 7 title "megabyte_paper", \
     "bpb_vs_training_flops.dat" index 3 using 1:2:3 with yerrorlines pointtype 7 title "perceiver_ar", \
     4.4624131319468727 with lines dashtype 2 title "ngram.order=1", \
     3.5132917214731219 with lines dashtype 2 title "ngram.order=2", \
     2.6816485443191675 with lines dashtype 2 title "ngram.order=3", \
     2.0938523647730944 with lines dashtype 2 title "ngram.order=4", \
     1.831238175122933 with lines dashtype 2 title "ngram.order=5", \
     1.7061289706203653 with lines dashtype 2 title "ngram.order=6"
