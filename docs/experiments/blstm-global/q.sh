#!/bin/bash
# usage: q.sh out.txt < configs (one JSON per line); runs 2 at a time
export OMP_NUM_THREADS=1
out=$1
while read -r a && { read -r b || b=""; }; do
  python -W ignore exp.py "$a" 1,2,3,4,5,6,7,8,9,10 0 >> $out 2>&1 &
  if [ -n "$b" ]; then python -W ignore exp.py "$b" 1,2,3,4,5,6,7,8,9,10 0 >> $out 2>&1; fi
  wait
done
