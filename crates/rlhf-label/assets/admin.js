// Placeholder (admin.js); the labeling pages replace it.
"use strict";
