"""Model families, one package each (feedback alignment, net fragments, spatial networks,
sparse coding, ...).

Every package here is imported by `snnsim.registry.load_families` and registers its
parts at import: layers (`LAYERS`, subclasses of `snnsim.layers.Layer` with
`type_name`, `config_fields`, `kind`, `example_entry` and the optional hooks),
data sets (`DATASETS`), tasks (`TASKS`, subclasses of `snnsim.tasks.Task` with an
`example` config), per-epoch metrics (`METRICS`), plots (`PLOTS`) and command-line
subcommands (`COMMANDS`). Nothing else imports a family by name, and a family does
not edit the training loop (`snnsim/training.py`): what it needs goes through the
hooks. `tests/test_conformance.py` checks every registered part without new test
code; a family's own tests live in `tests/test_<family>.py`.
"""
