// "Start over": the values of a finished task, handed to the form in memory (never secrets,
// never the URL), used once.

const pending = new Map();

export function setPrefill(templateRef, values) {
  pending.set(templateRef, structuredClone(values));
}

export function takePrefill(templateRef) {
  const values = pending.get(templateRef);
  pending.delete(templateRef);
  return values;
}
