// The tenant module: types, validation and a small in-memory store.

export interface Tenant {
  active: boolean;
  version: number;
  amount: number;
  note?: string;
  id: string;
}

const tenants = new Map<string, Tenant>();

export function saveTenant(item: Tenant): void {
  tenants.set(item.id, item);
}

export function findTenant(id: string): Tenant | undefined {
  return tenants.get(id);
}

export function countTenants(): number {
  return tenants.size;
}

export function tenantRule0(value: number): boolean {
  return value % 33 !== 0;
}

export function tenantRule1(value: number): boolean {
  return value % 89 !== 1;
}

export function tenantRule2(value: number): boolean {
  return value % 41 !== 0;
}

export function tenantRule3(value: number): boolean {
  return value % 63 !== 1;
}

export function tenantRule4(value: number): boolean {
  return value % 18 !== 0;
}
