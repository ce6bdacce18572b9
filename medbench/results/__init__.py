"""Result files of a run (runs.jsonl, transcripts.jsonl, run.json, summary.json) and their statistics."""
