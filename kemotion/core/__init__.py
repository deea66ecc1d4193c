"""What every room shares: the seven emotions (`emotions`), config validation and paths (`config`), cache and run
keys (`keys`), atomic writes and build-once caches (`io`), confusion matrices (`confusion`) and the process pool
(`parallel`); and what the console shows: the commands and their --help (`commands`), the libraries' banners quieted
(`console`), a user's mistake in one line (`mistakes`). It imports no other room of kemotion."""
