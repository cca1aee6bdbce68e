"""One module per `dopr-robot` sub-command group; each has `add_parser(subcommands)`."""
