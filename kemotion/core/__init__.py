"""What every room shares: the seven emotions (`emotions`), config validation and paths (`config`), cache and run
keys (`keys`), atomic writes and build-once caches (`io`), confusion matrices (`confusion`) and the process pool
(`parallel`). It imports no other room of kemotion."""
