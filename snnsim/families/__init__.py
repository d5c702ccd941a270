"""Model families, one package each (feedback alignment, net fragments, spatial networks,
sparse coding, ...). Every package here is imported by `snnsim.registry.load_families`
and registers its layers, data sets, tasks, metrics, plots and subcommands; nothing
else imports a family by name."""
