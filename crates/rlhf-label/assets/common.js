// Placeholder (common.js); the labeling pages replace it.
"use strict";
