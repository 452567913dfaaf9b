"""What every stage shares: the labels and the answer format, media settings and languages, the Clip, typed errors."""
