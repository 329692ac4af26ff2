"""`spikemesh traffic`: per-core spike traffic on the chip as heat maps, CSV and a Noxim traffic
table, clean and under attack (run.py: the runs and files; maps.py: the matplotlib drawings)."""
