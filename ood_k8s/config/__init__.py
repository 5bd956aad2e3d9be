# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Site configuration: every setting ood-k8s has, declared once, with its documentation.

The package, by concern:

* :mod:`~ood_k8s.config.section` -- the section class and its settings (default, doc, check, secret);
* :mod:`~ood_k8s.config.values` -- the checks of one value each;
* :mod:`~ood_k8s.config.schema` -- every section and setting, :class:`Config` at the top;
* :mod:`~ood_k8s.config.loader` -- :func:`load` and :func:`parse`: every problem at once, one line each;
* :mod:`~ood_k8s.config.yamlcache` -- YAML files compiled beside them for the next process;
* :mod:`~ood_k8s.config.example` -- the commented example file.

Importers use this package's names; the modules are the places to edit.
"""

from ood_k8s.config.loader import CROSS_CHECKS, DEFAULT_PATH, ENV_VAR, load, load_site, parse, resolve_path
from ood_k8s.config.schema import (
    AuthConfig,
    ClusterConfig,
    CognitoConfig,
    Config,
    EfsConfig,
    ExtraMount,
    GpuConfig,
    HookConfig,
    ImagePullSecretConfig,
    JobsConfig,
    KarpenterConfig,
    LimitsConfig,
    NfsConfig,
    OidcConfig,
    PortalConfig,
    Profile,
    PvcConfig,
    QuotaConfig,
    Range,
    StorageConfig,
    TemplatesConfig,
    UsersConfig,
)
from ood_k8s.config.section import (
    REQUIRED,
    SECRET_MASK,
    Setting,
    add_setting,
    fields,
    is_section,
    remove_setting,
    replace,
    section,
    setting,
    to_dict,
)
from ood_k8s.config.values import (
    check_abs_path,
    check_cidr,
    check_csi_driver,
    check_dns_label,
    check_non_negative,
    check_positive,
    check_prefix,
    check_quantity,
    check_resource_name,
    check_storage_mode,
    check_subject,
    check_url,
    check_user_template,
)
from ood_k8s.config.yamlcache import CACHE_SUFFIX, YamlError, last_code_mark, parse_yaml, read_yaml

__all__ = [
    "CACHE_SUFFIX", "CROSS_CHECKS", "DEFAULT_PATH", "ENV_VAR", "REQUIRED", "SECRET_MASK", "AuthConfig",
    "ClusterConfig", "CognitoConfig", "Config", "EfsConfig", "ExtraMount", "GpuConfig", "HookConfig",
    "ImagePullSecretConfig", "JobsConfig", "KarpenterConfig", "LimitsConfig", "NfsConfig", "OidcConfig",
    "PortalConfig", "Profile", "PvcConfig", "QuotaConfig", "Range", "Setting", "StorageConfig", "TemplatesConfig",
    "UsersConfig", "YamlError", "add_setting", "check_abs_path", "check_cidr", "check_csi_driver",
    "check_dns_label", "check_non_negative", "check_positive", "check_prefix", "check_quantity",
    "check_resource_name", "check_storage_mode", "check_subject", "check_url", "check_user_template", "example",
    "fields", "is_section", "last_code_mark", "load", "load_site", "parse", "parse_yaml", "read_yaml", "remove_setting",
    "replace", "resolve_path", "section", "setting", "to_dict",
]


def __getattr__(name: str) -> object:
    # The example file is for `ood-k8s config example`; importing it eagerly cost every poll ~3.5 ms.
    if name == "example":
        from ood_k8s.config.example import example

        # Importing the submodule bound the package's 'example' to the module: bind the function instead.
        globals()["example"] = example
        return example
    raise AttributeError(f"module 'ood_k8s.config' has no attribute {name!r}")
