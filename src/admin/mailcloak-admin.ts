// mailcloak-admin's program entry (bin/mailcloak-admin imports this module).
import { main } from "./main.js";

await main(process.argv);
