"""Entry point: ``python -m src.search +task=sst2 [budget=quick] [space.sharing=none] ...``."""

if __name__ == "__main__":
    # before the heavy imports: restart once with mimalloc preloaded, as the make targets run
    from src.utils.allocator import entry_point_preload

    entry_point_preload()

import hydra
from omegaconf import DictConfig

from src.pipeline.run import entry, run_and_exit, run_search


@hydra.main(version_base="1.3", config_path="../conf", config_name="search")
def main(cfg: DictConfig) -> None:
    entry(run_search, cfg)


if __name__ == "__main__":
    run_and_exit(main)
