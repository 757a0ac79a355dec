// Validates the prometheus-operator objects in a JSON array (argv[2]) against the operator's
// CRD schemas. Prints one line per object; exits 1 when any is invalid, 2 when the file holds
// none (a render that lost them must not pass).
import fs from "node:fs";
import { ServiceMonitor, PodMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { AlertmanagerConfig, ScrapeConfig } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1";

const models = {
  "monitoring.coreos.com/v1 ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1 PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1 PrometheusRule": PrometheusRule,
  "monitoring.coreos.com/v1alpha1 AlertmanagerConfig": AlertmanagerConfig,
  "monitoring.coreos.com/v1alpha1 ScrapeConfig": ScrapeConfig,
};
const objects = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let checked = 0;
let invalid = 0;
for (const o of objects) {
  const key = `${o.apiVersion} ${o.kind}`;
  if (o.apiVersion.startsWith("monitoring.coreos.com/") && !models[key]) {
    console.log(`INVALID ${key} ${o.metadata?.name}: no schema for this version and kind`);
    invalid++;
    continue;
  }
  const Model = models[key];
  if (!Model) continue;
  checked++;
  try {
    new Model(o).validate();
    console.log(`valid ${key} ${o.metadata.name}`);
  } catch (e) {
    invalid++;
    console.log(`INVALID ${key} ${o.metadata?.name}: ${e.message}`);
  }
}
if (checked === 0) {
  console.log("no prometheus-operator object to validate");
  process.exit(2);
}
process.exit(invalid ? 1 : 0);
