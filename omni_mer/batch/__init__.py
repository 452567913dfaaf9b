"""The batch job: a folder of videos -> label_prediction.csv + supplements (workers, time limits, resume, shards)."""
