"""The certification rules and the official JSON schemas, one module per family of rules:

- :mod:`.document` :func:`check_rules` on a whole Swagger 2.0 document (the source spec or the generated
  definition): operation ids, summaries and descriptions, ``$ref`` targets, the test connection;
- :mod:`.texts` summaries, the labels of parameters and properties, ``info`` and the connector metadata;
- :mod:`.operations` an operation's parameters, schema properties and responses;
- :mod:`.triggers` polling triggers;
- :mod:`.generated` :func:`check_connector_definition`, rules of the generated definition only;
- :mod:`.properties` :func:`check_properties`, rules of ``apiProperties.json``;
- :mod:`.schemas` :func:`validate_schemas` against the official JSON schemas.

Each rule returns (or appends) human-readable violations; none means the document complies.
"""

from service.connector.rules.document import check_rules
from service.connector.rules.generated import check_connector_definition
from service.connector.rules.properties import check_properties
from service.connector.rules.schemas import validate_schemas
from service.connector.rules.triggers import has_triggers

__all__ = ["check_connector_definition", "check_properties", "check_rules", "has_triggers", "validate_schemas"]
