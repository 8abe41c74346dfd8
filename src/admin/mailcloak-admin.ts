// mailcloak-admin's program entry. Importing it runs nothing: bin/mailcloak-admin
// calls main().
export { main } from "./main.js";
