"""Entry point: ``python -m src.search +task=sst2 [budget=quick] [space.sharing=none] ...``."""

import hydra
from omegaconf import DictConfig

from src.pipeline.run import entry, run_search


@hydra.main(version_base="1.3", config_path="../conf", config_name="search")
def main(cfg: DictConfig) -> None:
    entry(run_search, cfg)


if __name__ == "__main__":
    main()
