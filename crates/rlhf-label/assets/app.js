// Placeholder (app.js); the labeling pages replace it.
"use strict";
