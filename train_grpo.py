"""Train omni-mer (LoRA SFT or GRPO on the Qwen2.5-Omni thinker) from a recipe.

    accelerate launch --config_file recipes/accelerate/cpu.yaml train_grpo.py \
        --config recipes/tiny-cpu/grpo.yaml --output_dir checkpoints/tiny-grpo --model_name_or_path DIR

``--stage sft|grpo`` and any other recipe key given on the command line override the recipe; see docs/training.md.
"""

import sys

from omni_mer.train.run import main

if __name__ == "__main__":
    sys.exit(main())
