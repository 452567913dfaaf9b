"""Training on TRL: manifest → SFT/GRPO examples, verifiable rewards, LoRA SFT and GRPO with video+audio in the loss.

Modules: recipe (the TrlParser recipe style of both backends, reward wrappers), config (OmniTrainArgs), data
(records, evidence cache, examples), rewards (registry), common (the LoRA policy), sft (TRL SFTTrainer collator),
omni_grpo (the GRPOTrainer subclass), cards (adapter README), crosslingual (train × test language table), run
(entry of ``omni-mer train`` / train_grpo.py), llm / llm_data / llm_eval (the text-only Qwen2.5 backend).
"""
