// Evaluate the calculatedExpression of medagent's Questionnaires with NLM's FHIRPath engine.
// stdin: {"questionnaires": {key: Questionnaire}, "cases": [{"id", "questionnaire": key,
//         "response": QuestionnaireResponse, "weights": [linkId, ...]}]}
// stdout: {id: {"total": [...], "weights": {linkId: [...]}} or {"error": message}}
'use strict';
const fhirpath = require('fhirpath');
const r4 = require('fhirpath/fhir-context/r4');

const CALCULATED =
  'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression';

function calculated(items) {
  for (const item of items || []) {
    for (const ext of item.extension || []) {
      if (ext.url === CALCULATED) return ext.valueExpression.expression;
    }
    const nested = calculated(item.item);
    if (nested) return nested;
  }
  return null;
}

function main(input) {
  const compiled = {};
  for (const [key, q] of Object.entries(input.questionnaires)) {
    const expression = calculated(q.item);
    compiled[key] = expression === null ? null : fhirpath.compile(expression, r4);
  }
  const out = {};
  for (const c of input.cases) {
    const q = input.questionnaires[c.questionnaire];
    const env = { resource: c.response, questionnaire: q };
    try {
      const fn = compiled[c.questionnaire];
      const result = { total: fn === null ? null : fn(c.response, env) };
      if (c.weights && c.weights.length) {
        result.weights = {};
        for (const linkId of c.weights) {
          const path = `%resource.repeat(item).where(linkId = '${linkId}').answer.value.weight()`;
          result.weights[linkId] = fhirpath.evaluate(c.response, path, env, r4);
        }
      }
      out[c.id] = result;
    } catch (err) {
      out[c.id] = { error: String(err && err.message ? err.message : err) };
    }
  }
  return out;
}

let data = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { data += chunk; });
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify(main(JSON.parse(data))));
});
