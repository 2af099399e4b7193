"""Builds the Power Platform connector definition from ``openapi.yaml`` and checks the certification rules.

Commands::

    python -m service.connector build [--host HOST] [--out connector-definition] [--spec openapi.yaml]
                                      [--entra-client-id ID --entra-resource api://...] [--hosted-publisher-key]
    python -m service.connector check [--out connector-definition] [--spec openapi.yaml]
    python -m service.connector release [--out connector-definition] [--spec openapi.yaml]

``build`` writes ``apiDefinition.swagger.json``, ``apiProperties.json``, ``icon.png`` and ``readme.md``. When
the spec declares an OAuth 2.0 scheme besides the API key, the connection offers its types
(``connectionParameterSets``): API key, and Microsoft Entra ID (identity provider ``aad``), for an instance of
one's own; and the hosted types on the publisher's deployment at ``--host`` (the maker's platform account, alone
or with the Entra ID sign-in), forwarded as ``X-Platform``/``X-Platform-Key``/``X-Platform-Secret`` by ``setheader``
policies (``build --hosted-publisher-key``: the hosted type also asks for the publisher's API key; docs/hosted.md).
``check`` runs every rule (certification rules on the source spec and on the generated definition, the
official JSON schemas, dynamic references, dropdown coverage, the apiProperties rules) and verifies that the
checked-in folder is what the generator produces, and that the definition is compatible with the last
released one (``connector-definition/released/``, :mod:`.compat`); it prints the violations and exits 1 when
there are any. ``release`` records the current definition as the released one when every check passes.

Function API (used by the tests): :func:`build_definition`, :func:`build_properties`,
:func:`build_readme`, :func:`write_all`, :func:`check_rules`, :func:`check_connector_definition`,
:func:`check_properties`, :func:`check_dynamic_references`, :func:`check_dropdown_parameters`,
:func:`validate_schemas`, :func:`check_output_current`, :func:`check_all`.

The package never imports Flask or Connexion: it reads the YAML file and writes plain files. Its parts:

- :mod:`.spec` the connector's fixed facts (files, brand, limits) and the source spec: loading and walking;
- :mod:`.definition` the spec transform (``apiDefinition.swagger.json``) and ``apiProperties.json``;
- :mod:`.readme` the folder's readme; ``icon.png`` is a checked-in file, copied (``spec.ICON_SOURCE``);
- :mod:`.rules` the certification rules and the official JSON schemas;
- :mod:`.dynamic` dynamic references and dropdown coverage;
- :mod:`.files` rendering, writing and the "checked-in copy is current" check; ``__main__`` the CLI;
- :mod:`.compat` the breaking-change rules against the released definition (a stable contract).
"""

from service.connector.compat import check_compatible, check_versioning, load_released
from service.connector.definition import build_definition, build_properties, strip_vendor_extensions
from service.connector.dynamic import check_dropdown_parameters, check_dynamic_references
from service.connector.files import (
    check_against_release,
    check_all,
    check_output_current,
    release,
    released_path,
    render_files,
    write_all,
)
from service.connector.readme import build_readme
from service.connector.rules import check_connector_definition, check_properties, check_rules, validate_schemas
from service.connector.spec import *  # noqa: F403 - the constants and spec helpers are part of the API

__all__ = [  # noqa: F405
    "build_definition", "build_properties", "strip_vendor_extensions", "check_dropdown_parameters",
    "check_dynamic_references", "check_all", "check_output_current", "render_files", "write_all",
    "build_readme", "check_connector_definition", "check_properties", "check_rules",
    "validate_schemas", "check_compatible", "check_versioning", "load_released", "check_against_release",
    "release", "released_path",
]
