from ood_k8s.cli import cli

cli()
