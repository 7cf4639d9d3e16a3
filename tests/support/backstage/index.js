// A real Backstage backend with only the software catalog, for Falsework's catalog:* tests.
// Copied next to node_modules in the cache folder and started by tests/support/backstage_catalog.py.
'use strict';
const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(require('@backstage/plugin-catalog-backend'));
backend.start();
