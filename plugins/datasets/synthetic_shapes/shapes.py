"""Procedural part-labelled shapes: each category composes primitives with randomised proportions.

Shapes are built in a y-up design frame (arbitrary units, about one unit across) and later unioned and
normalised by the generator. Every primitive carries the name of the part it belongs to; several
primitives may form one part (four legs are all ``leg``), and a ``subtract`` primitive carves the solid
(the cavity of a mug) while still labelling the surface it leaves. Parts touch by overlapping, never by
coplanar contact, so the union is one clean solid.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from manifold3d import CrossSection, Manifold

SEGMENTS = 32  # circular segments of round primitives (fixed so shapes do not depend on global defaults)
EPS = 0.01  # overlap between touching parts (design units)

Vec = Sequence[float]


@dataclass(frozen=True)
class Primitive:
    part: str
    solid: Manifold
    subtract: bool = False


# --- primitives ------------------------------------------------------------------------------------------

_TO_AXIS = {"x": (0.0, 90.0, 0.0), "y": (-90.0, 0.0, 0.0), "z": (0.0, 0.0, 0.0)}  # rotations taking +z there


def box(size: Vec, center: Vec) -> Manifold:
    return Manifold.cube(tuple(size), True).translate(tuple(center))


def cylinder(radius: float, length: float, center: Vec, axis: str = "y", radius_end: float | None = None) -> Manifold:
    """A cylinder, or a cone frustum narrowing to ``radius_end`` towards the positive ``axis``."""
    end = radius if radius_end is None else radius_end
    return (Manifold.cylinder(length, radius, end, SEGMENTS, True)
            .rotate(_TO_AXIS[axis]).translate(tuple(center)))


def sphere(radius: float, center: Vec, stretch: Vec = (1.0, 1.0, 1.0)) -> Manifold:
    """A sphere, or an ellipsoid with semi-axes ``radius * stretch``."""
    return Manifold.sphere(radius, SEGMENTS).scale(tuple(stretch)).translate(tuple(center))


def torus(major: float, minor: float, center: Vec, axis: str = "z") -> Manifold:
    ring = CrossSection.circle(minor, SEGMENTS // 2).translate((major, 0.0))
    return Manifold.revolve(ring, SEGMENTS).rotate(_TO_AXIS[axis]).translate(tuple(center))


def capsule(radius: float, start: Vec, end: Vec) -> Manifold:
    return Manifold.batch_hull([sphere(radius, start), sphere(radius, end)])


def leg(thickness: float, x: float, z: float, top: float, round_: bool, bottom: float = 0.0) -> Manifold:
    """A vertical leg (round or square) from ``bottom`` up to ``top``."""
    height = top - bottom
    center = (x, bottom + height / 2, z)
    return cylinder(thickness / 2, height, center) if round_ else box((thickness, height, thickness), center)


def lean(solid: Manifold, tilt: float, pivot: Vec) -> Manifold:
    """Tilt a backrest modelled around the origin back (towards -z) by ``tilt`` degrees and move it to ``pivot``."""
    return solid.rotate((-tilt, 0.0, 0.0)).translate(tuple(pivot))


# --- categories ----------------------------------------------------------------------------------------


def chair(rng: np.random.Generator) -> list[Primitive]:
    u = rng.uniform
    width, depth, height, thick = u(0.40, 0.60), u(0.38, 0.55), u(0.38, 0.50), u(0.04, 0.08)
    prims = [Primitive("seat", box((width, thick, depth), (0, height - thick / 2, 0)))]
    leg_t, inset, round_legs = u(0.03, 0.055), u(0.0, 0.05), rng.random() < 0.5
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (width / 2 - leg_t / 2 - inset), sz * (depth / 2 - leg_t / 2 - inset)
            prims.append(Primitive("leg", leg(leg_t, x, z, height - thick / 2, round_legs)))
    back_h, back_t, tilt = u(0.30, 0.60), u(0.03, 0.06), u(0.0, 15.0)
    back_w = width * u(0.8, 1.0)
    pivot, full_h = (0.0, height - thick, -depth / 2 + back_t / 2), back_h + thick
    if rng.random() < 0.6:  # solid panel
        backs = [box((back_w, full_h, back_t), (0, full_h / 2, 0))]
    else:  # vertical slats under a top rail
        slats, rail_h = int(rng.integers(2, 5)), u(0.05, 0.10)
        slat_w = back_w / (2 * slats + 1)
        backs = [box((back_w, rail_h, back_t), (0, full_h - rail_h / 2, 0))]
        backs += [box((slat_w, full_h, back_t * 0.8), (-back_w / 2 + (2 * i + 1.5) * slat_w, full_h / 2, 0))
                  for i in range(slats)]
    prims += [Primitive("back", lean(b, tilt, pivot)) for b in backs]
    if rng.random() < 0.5:
        arm_h, arm_t, arm_d = u(0.16, 0.28), u(0.04, 0.07), depth * u(0.7, 0.95)
        for sx in (-1, 1):
            x = sx * (width / 2 - arm_t / 2)
            front = -depth / 2 + arm_d
            prims.append(Primitive("arm", box((arm_t, arm_t, arm_d), (x, height + arm_h, -depth / 2 + arm_d / 2))))
            prims.append(Primitive("arm", leg(arm_t * 0.8, x, front - arm_t / 2, height + arm_h, rng.random() < 0.5,
                                              bottom=height - EPS)))
    return prims


def table(rng: np.random.Generator) -> list[Primitive]:
    u = rng.uniform
    height, thick = u(0.60, 0.80), u(0.03, 0.07)
    round_top = rng.random() < 0.35
    top_y = height - thick / 2
    if round_top:
        radius = u(0.35, 0.60)
        prims = [Primitive("top", cylinder(radius, thick, (0, top_y, 0)))]
        half_x = half_z = radius * 0.6
    else:
        width, depth = u(0.8, 1.6), u(0.5, 1.0)
        prims = [Primitive("top", box((width, thick, depth), (0, top_y, 0)))]
        inset = u(0.02, 0.10)
        half_x, half_z = width / 2 - inset, depth / 2 - inset
    under = height - thick + EPS
    if rng.random() < (0.6 if round_top else 0.2):  # pedestal: a pole on a foot
        pole_r = u(0.03, 0.07)
        prims.append(Primitive("leg", cylinder(pole_r, under, (0, under / 2, 0))))
        foot_h = u(0.02, 0.05)
        if rng.random() < 0.5:
            prims.append(Primitive("leg", cylinder(u(0.2, 0.35), foot_h, (0, foot_h / 2, 0))))
        else:
            span = u(0.4, 0.7)
            prims += [Primitive("leg", box((span, foot_h, pole_r), (0, foot_h / 2, 0))),
                      Primitive("leg", box((pole_r, foot_h, span), (0, foot_h / 2, 0)))]
        return prims
    leg_t, round_legs = u(0.04, 0.08), rng.random() < 0.5
    xs, zs = (-half_x + leg_t / 2, half_x - leg_t / 2), (-half_z + leg_t / 2, half_z - leg_t / 2)
    prims += [Primitive("leg", leg(leg_t, x, z, under, round_legs)) for x in xs for z in zs]
    if rng.random() < 0.35:  # stretchers between the legs
        y, bar = height * u(0.1, 0.3), leg_t * 0.6
        prims += [Primitive("leg", box((xs[1] - xs[0], bar, bar), (0, y, z))) for z in zs]
        prims += [Primitive("leg", box((bar, bar, zs[1] - zs[0]), (x, y, 0))) for x in xs]
    return prims


def lamp(rng: np.random.Generator) -> list[Primitive]:
    u = rng.uniform
    base_h = u(0.02, 0.06)
    if rng.random() < 0.7:
        base = cylinder(u(0.10, 0.20), base_h, (0, base_h / 2, 0))
    else:
        side = u(0.18, 0.32)
        base = box((side, base_h, side), (0, base_h / 2, 0))
    pole_r, pole_h = u(0.012, 0.025), u(0.35, 0.80)
    prims = [Primitive("base", base),
             Primitive("pole", cylinder(pole_r, pole_h, (0, base_h - EPS + pole_h / 2, 0)))]
    top = (0.0, base_h - EPS + pole_h, 0.0)
    if rng.random() < 0.3:  # a horizontal arm carrying the shade sideways
        reach = u(0.10, 0.25)
        prims.append(Primitive("pole", capsule(pole_r, (0, top[1] - pole_r, 0), (reach, top[1] - pole_r, 0))))
        top = (reach, top[1], 0.0)
    shade_h, r_low = u(0.15, 0.30), u(0.10, 0.25)
    center = (top[0], top[1] - shade_h * u(0.1, 0.4), top[2])
    style = rng.integers(3)
    if style == 0:  # conical shade
        shade = cylinder(r_low, shade_h, center, radius_end=r_low * u(0.4, 0.8))
    elif style == 1:  # drum
        shade = cylinder(r_low, shade_h, center)
    else:  # globe
        shade = sphere(shade_h / 2, center, stretch=(r_low / shade_h * 2, 1.0, r_low / shade_h * 2))
    prims.append(Primitive("shade", shade))
    return prims


def airplane(rng: np.random.Generator) -> list[Primitive]:
    u = rng.uniform
    length, radius = u(1.6, 2.4), u(0.08, 0.14)
    mid = length * u(0.55, 0.7)
    nose, tail_len = u(0.10, 0.25) * length, length - mid
    prims = [Primitive("body", cylinder(radius, mid, (0, 0, 0), axis="z")),
             Primitive("body", sphere(radius, (0, 0, mid / 2 - EPS), stretch=(1, 1, nose / radius))),
             Primitive("body", cylinder(radius * u(0.2, 0.4), tail_len, (0, 0, -mid / 2 - tail_len / 2 + EPS),
                                        axis="z", radius_end=radius))]  # tail cone, narrowing backwards
    span, chord, thick = u(1.4, 2.2), u(0.2, 0.35), u(0.02, 0.04)
    sweep, wing_y, wing_z = u(0.0, 30.0), u(-0.6, 0.3) * radius, u(-0.1, 0.1) * length
    prims += [Primitive("wing", swept_half(span / 2, chord, thick, sweep, side, (0, wing_y, wing_z)))
              for side in (-1, 1)]
    tail_z = -mid / 2 - tail_len * u(0.6, 0.8)
    stab_span, stab_chord = span * u(0.25, 0.4), chord * u(0.5, 0.8)
    prims += [Primitive("tail", swept_half(stab_span / 2, stab_chord, thick * 0.8, sweep, side, (0, 0, tail_z)))
              for side in (-1, 1)]
    fin_h = u(0.25, 0.45)
    fin = lean(box((thick * 0.8, fin_h, stab_chord * 1.2), (0, fin_h / 2, 0)), u(10.0, 35.0), (0, 0, tail_z))
    prims.append(Primitive("tail", fin))
    engines = int(rng.choice([0, 2, 4], p=[0.25, 0.5, 0.25]))
    eng_r, eng_l = u(0.04, 0.07), u(0.20, 0.35)
    offsets = (0.35,) if engines == 2 else (0.3, 0.6) if engines == 4 else ()
    for frac in offsets:
        for side in (-1, 1):
            x = side * frac * span / 2
            z = wing_z - abs(x) * np.tan(np.radians(sweep)) + chord * 0.3
            y = wing_y - thick / 2 - eng_r * 0.7
            prims.append(Primitive("engine", capsule(eng_r, (x, y, z - eng_l / 2), (x, y, z + eng_l / 2))))
    return prims


def swept_half(half_span: float, chord: float, thick: float, sweep: float, side: int, root: Vec) -> Manifold:
    """One wing half from the body centre line outwards (``side`` = -1 or 1), its tip swept back."""
    half = box((half_span, thick, chord), (half_span / 2, 0, 0)).rotate((0, sweep, 0))
    return (half if side > 0 else half.mirror((1, 0, 0))).translate(tuple(root))


def mug(rng: np.random.Generator) -> list[Primitive]:
    u = rng.uniform
    radius, height = u(0.30, 0.45), u(0.6, 1.1)
    top_radius = radius * u(0.9, 1.15)
    wall, floor = radius * u(0.10, 0.16), height * u(0.06, 0.10)
    prims = [Primitive("body", cylinder(radius, height, (0, height / 2, 0), radius_end=top_radius))]
    mid_r = (radius + top_radius) / 2

    def inner_radius(y: float) -> float:
        return radius + (top_radius - radius) * y / height - wall

    if rng.random() < 0.7:  # round handle, possibly elongated
        major, minor = height * u(0.18, 0.28), height * u(0.035, 0.06)
        handle = (torus(major, minor, (0, 0, 0)).scale((1, u(1.0, 1.4), 1))
                  .translate((mid_r - wall / 2 + major * u(0.5, 0.8), height * u(0.45, 0.55), 0)))
        prims.append(Primitive("handle", handle))
    else:  # square handle: two arms and an upright
        reach, span, t = height * u(0.2, 0.3), height * u(0.4, 0.6), height * u(0.06, 0.1)
        y0 = height * u(0.45, 0.55)
        x = mid_r - wall / 2
        prims += [Primitive("handle", box((reach + t, t, t), (x + reach / 2, y0 + sy * (span - t) / 2, 0)))
                  for sy in (-1, 1)]
        prims.append(Primitive("handle", box((t, span, t), (x + reach, y0, 0))))
    cavity_top = height + 0.1  # through the rim
    prims.append(Primitive("body", cylinder(inner_radius(floor), cavity_top - floor, (0, (floor + cavity_top) / 2, 0),
                                            radius_end=inner_radius(cavity_top)), subtract=True))
    return prims


def car(rng: np.random.Generator) -> list[Primitive]:
    u = rng.uniform
    length, width = u(1.8, 2.4), u(0.8, 1.0)
    wheel_r, wheel_w = u(0.16, 0.24), u(0.12, 0.20)
    bottom, body_h = wheel_r * u(0.5, 0.9), u(0.30, 0.45)
    body_c = (0, bottom + body_h / 2, 0)
    if rng.random() < 0.5:
        body = box((width, body_h, length), body_c)
    else:  # sloped hood and trunk: hull of the full-length floor and a shorter top
        top_l = length * u(0.7, 0.9)
        body = Manifold.batch_hull([box((width, body_h / 2, length), (0, bottom + body_h / 4, 0)),
                                    box((width, body_h / 2, top_l), (0, bottom + body_h * 0.75, 0))])
    prims = [Primitive("body", body)]
    cab_l, cab_h, cab_z = length * u(0.35, 0.55), u(0.22, 0.40), length * u(-0.2, 0.1)
    cab_y = bottom + body_h - EPS
    cab_w = width * u(0.8, 0.95)
    roof_w, roof_l, roof_z = cab_w * u(0.85, 1.0), cab_l * u(0.6, 0.9), cab_z + u(-0.1, 0.1) * cab_l
    prims.append(Primitive("cabin", Manifold.batch_hull([  # a tapered box: windscreens slope
        box((cab_w, EPS, cab_l), (0, cab_y + EPS / 2, cab_z)),
        box((roof_w, EPS, roof_l), (0, cab_y + cab_h - EPS / 2, roof_z))])))
    axle = length / 2 - u(0.25, 0.40)
    prims += [Primitive("wheel", cylinder(wheel_r, wheel_w, (sx * (width / 2 - wheel_w * 0.3), wheel_r, sz * axle),
                                          axis="x"))
              for sx in (-1, 1) for sz in (-1, 1)]
    if rng.random() < 0.3:  # rear spoiler on two posts
        spoiler_y = bottom + body_h + u(0.08, 0.15)
        z = -length / 2 + 0.1
        prims.append(Primitive("body", box((width * 0.9, 0.03, 0.12), (0, spoiler_y, z))))
        post_bottom = bottom + body_h / 2  # inside the body whatever its profile
        prims += [Primitive("body", box((0.04, spoiler_y - post_bottom, 0.04),
                                        (sx * width * 0.3, (spoiler_y + post_bottom) / 2, z)))
                  for sx in (-1, 1)]
    return prims


def bench(rng: np.random.Generator) -> list[Primitive]:
    u = rng.uniform
    length, depth, height, thick = u(1.0, 1.8), u(0.30, 0.45), u(0.38, 0.48), u(0.04, 0.08)
    prims = [Primitive("seat", box((length, thick, depth), (0, height - thick / 2, 0)))]
    under = height - thick + EPS
    if rng.random() < 0.4:  # two slab ends
        slab_t, inset = u(0.04, 0.08), u(0.0, 0.15)
        prims += [Primitive("leg", box((slab_t, under, depth * 0.9),
                                       (sx * (length / 2 - inset - slab_t / 2), under / 2, 0)))
                  for sx in (-1, 1)]
    else:  # posts, a middle pair on long benches
        leg_t, round_legs = u(0.04, 0.07), rng.random() < 0.5
        columns = 3 if length > 1.4 else 2
        xs = np.linspace(-length / 2 + leg_t, length / 2 - leg_t, columns)
        prims += [Primitive("leg", leg(leg_t, x, sz * (depth / 2 - leg_t), under, round_legs))
                  for x in xs for sz in (-1, 1)]
    if rng.random() < 0.6:
        back_h, back_t, tilt = u(0.20, 0.40), u(0.03, 0.05), u(0.0, 15.0)
        pivot, full_h = (0.0, height - thick, -depth / 2 + back_t / 2), back_h + thick
        if rng.random() < 0.5:
            backs = [box((length, full_h, back_t), (0, full_h / 2, 0))]
        else:  # horizontal boards on end posts
            boards, post_w = int(rng.integers(2, 4)), u(0.04, 0.07)
            board_h = back_h / (2 * boards)
            backs = [box((post_w, full_h, back_t), (sx * (length / 2 - post_w / 2), full_h / 2, 0)) for sx in (-1, 1)]
            backs += [box((length, board_h, back_t * 0.9), (0, full_h - (2 * i + 1) * board_h, 0))
                      for i in range(boards)]
        prims += [Primitive("back", lean(b, tilt, pivot)) for b in backs]
    return prims


def bottle(rng: np.random.Generator) -> list[Primitive]:
    u = rng.uniform
    radius, body_h = u(0.12, 0.22), u(0.4, 0.7)
    neck_r, neck_h = radius * u(0.25, 0.45), u(0.10, 0.25)
    if rng.random() < 0.25:  # square bottle
        body = box((radius * 1.8, body_h, radius * 1.8), (0, body_h / 2, 0))
    else:
        body = cylinder(radius, body_h, (0, body_h / 2, 0), radius_end=radius * u(0.85, 1.0))
    shoulder_h = u(0.08, 0.20)
    if rng.random() < 0.5:
        shoulder = cylinder(radius, shoulder_h, (0, body_h - EPS + shoulder_h / 2, 0), radius_end=neck_r)
    else:
        shoulder = sphere(radius, (0, body_h - EPS, 0), stretch=(1, shoulder_h / radius, 1))
    prims = [Primitive("body", body), Primitive("body", shoulder)]
    neck_y = body_h + shoulder_h - 2 * EPS
    prims.append(Primitive("neck", cylinder(neck_r, neck_h, (0, neck_y + neck_h / 2, 0))))
    if rng.random() < 0.85:
        cap_h = u(0.04, 0.08)
        prims.append(Primitive("cap", cylinder(neck_r * u(1.1, 1.3), cap_h,
                                               (0, neck_y + neck_h - EPS + cap_h / 2, 0))))
    return prims


BUILDERS: dict[str, Callable[[np.random.Generator], list[Primitive]]] = {
    "chair": chair,
    "table": table,
    "lamp": lamp,
    "airplane": airplane,
    "mug": mug,
    "car": car,
    "bench": bench,
    "bottle": bottle,
}
