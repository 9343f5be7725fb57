"""metabridge: keeps Meta's Conversions API, Custom Audiences and Catalog in sync with first-party data.

Layers, bottom to top:

- ``metabridge.identity``: pure normalization and hashing of customer data (shared by every surface).
- ``metabridge.events``: pure mapping of incoming events to Conversions API request bodies.
- ``metabridge.graph``: the Graph API client and its declarative error table.
- ``metabridge.sandbox``: a local simulation of the Graph API endpoints metabridge uses.
- ``metabridge.cli``: the ``metabridge`` command.
"""

__version__ = "0.1.0"
