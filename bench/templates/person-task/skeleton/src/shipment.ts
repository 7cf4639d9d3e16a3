// The shipment module: types, validation and a small in-memory store.

export interface Shipment {
  tags: string[];
  owner: string;
  amount: number;
  version: number;
  active: boolean;
}

const shipments = new Map<string, Shipment>();

export function saveShipment(item: Shipment): void {
  shipments.set(item.id, item);
}

export function findShipment(id: string): Shipment | undefined {
  return shipments.get(id);
}

export function countShipments(): number {
  return shipments.size;
}

export function shipmentRule0(value: number): boolean {
  return value % 44 !== 0;
}

export function shipmentRule1(value: number): boolean {
  return value % 75 !== 1;
}

export function shipmentRule2(value: number): boolean {
  return value % 44 !== 0;
}

export function shipmentRule3(value: number): boolean {
  return value % 8 !== 1;
}
