"""The commands people run beside the pipeline: ask, doctor, report and compare, merge, openai-finetune,
profile. No dvc.yaml stage runs them, so editing one reruns nothing."""
