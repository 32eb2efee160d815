"""Entry point: ``python -m src.retrain +task=sst5 arch=published_sst5`` (or ``arch=path/to/arch.yaml``)."""

if __name__ == "__main__":
    # before the heavy imports: restart once with mimalloc preloaded, as the make targets run
    from src.utils.allocator import entry_point_preload

    entry_point_preload()

import hydra
from omegaconf import DictConfig

from src.pipeline.run import entry, run_and_exit, run_retrain


@hydra.main(version_base="1.3", config_path="../conf", config_name="retrain")
def main(cfg: DictConfig) -> None:
    entry(run_retrain, cfg)


if __name__ == "__main__":
    run_and_exit(main)
