T="--catalog data/tune/catalog --queries data/tune/queries --truth data/tune/truth.csv"
for s in "target_sizes=256,160,100" "target_sizes=200,130" "target_sizes=400,250,160" "target_sizes=320,200,130,90" "view_sides=60,200" "view_sides=100,320" "spread_gamma=0" "spread_gamma=2"; do
  /tmp/venv0/bin/python bench_offline.py $T --label "tune $s" --set $s min_inliers=8 2>&1 | grep "^|"
done
