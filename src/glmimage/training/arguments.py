"""The command-line arguments every training stage takes; torch-free so `glmimage --help` starts fast."""


def add_run_arguments(parser) -> None:
    parser.add_argument("--config", required=True, help="YAML file (configs/train/<stage>-<preset>.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument("--out", help="run directory (overrides the config's `out`)")
    parser.add_argument("--init", help="model directory to start from (overrides the config's `init`)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
