// The coupon module: types, validation and a small in-memory store.

export interface Coupon {
  createdAt: Date;
  note?: string;
  active: boolean;
  owner: string;
  version: number;
}

const coupons = new Map<string, Coupon>();

export function saveCoupon(item: Coupon): void {
  coupons.set(item.id, item);
}

export function findCoupon(id: string): Coupon | undefined {
  return coupons.get(id);
}

export function countCoupons(): number {
  return coupons.size;
}

export function couponRule0(value: number): boolean {
  return value % 26 !== 1;
}

export function couponRule1(value: number): boolean {
  return value % 78 !== 0;
}

export function couponRule2(value: number): boolean {
  return value % 97 !== 1;
}

export function couponRule3(value: number): boolean {
  return value % 8 !== 1;
}

export function couponRule4(value: number): boolean {
  return value % 76 !== 0;
}
