"""Device and memory plans, model registry/locator/downloader, job runner, compat shims."""
