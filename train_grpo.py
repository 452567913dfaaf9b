"""Train omni-mer (LoRA SFT or GRPO on the Qwen2.5-Omni thinker) from a recipe.

    accelerate launch --config_file recipes/accelerate/cpu.yaml train_grpo.py \
        --config recipes/tiny-cpu/grpo.yaml --output-dir checkpoints/tiny-grpo --model-name-or-path DIR

``--stage sft|grpo`` and any other recipe key given on the command line override the recipe (each key is a flag,
spelled ``--output-dir`` or, like the recipe's YAML key, ``--output_dir``); see docs/training.md.
"""

import sys

from omni_mer.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("train", sys.argv[1:], prog="train_grpo.py"))
