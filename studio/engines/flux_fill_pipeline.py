"""FLUX.1 Fill + FLUX ControlNet: the diffusers pipeline diffusers itself does not ship.

Only imported lazily (by `studio.engines.flux_fill` / `studio.engines.tiny`), so the torch and
diffusers imports at the top of this module never run at app start-up.

`FluxFillControlNetPipeline` *is* a `FluxFillPipeline` (subclass) with one optional extra
component, `controlnet`. Everything except the denoising loop is diffusers' own code, called
through the inherited methods: `check_inputs`, `encode_prompt`, `prepare_latents`,
`prepare_mask_latents`, `get_timesteps`, `_pack_latents`, `_unpack_latents`, plus the module
helpers `calculate_shift`, `retrieve_timesteps` and `retrieve_latents`. The loop follows
`FluxFillPipeline.__call__` operation for operation, so with the ControlNet absent, at scale 0,
or outside its start/end window, the result is bit-identical to `FluxFillPipeline`.

The ControlNet (InstantX / Shakker-Labs Union, Pro, Pro 2.0, or XLabs) sees only the 64-channel
packed noisy latents plus the VAE-encoded control image; its residuals go into the Fill
transformer through `controlnet_block_samples` / `controlnet_single_block_samples`.
The control image is encoded *after* the Fill latents and with the latent mode (no sampling), so
turning the ControlNet on or off never changes the random noise a seed produces.
"""

from __future__ import annotations

from studio.runtime.compat import ensure_torchvision

ensure_torchvision()

from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import FluxFillPipeline  # noqa: E402
from diffusers.models.controlnets.controlnet_flux import FluxControlNetModel  # noqa: E402
from diffusers.pipelines.flux.pipeline_output import FluxPipelineOutput  # noqa: E402
from diffusers.pipelines.flux.pipeline_flux_fill import (  # noqa: E402
    calculate_shift,
    retrieve_latents,
    retrieve_timesteps,
)

StepCallback = Callable[[Any, int, Any, dict], dict]


def controlnet_keep(num_steps: int, start: float, end: float) -> list[float]:
    """1.0 for the steps where the ControlNet acts, 0.0 elsewhere (diffusers' own rule)."""
    return [1.0 - float(i / num_steps < start or (i + 1) / num_steps > end) for i in range(num_steps)]


class FluxFillControlNetPipeline(FluxFillPipeline):
    """`FluxFillPipeline` plus an optional FLUX ControlNet feeding residuals into the Fill transformer."""

    # The ControlNet is excluded from *model* offload: it runs every step next to the transformer,
    # and swapping it in and out per step would cost more than keeping it resident. Sequential
    # (layer-by-layer) offload is for small cards and offloads it too (see
    # `enable_sequential_cpu_offload`): keeping it whole would pin 4-6.6 GB on the GPU.
    model_cpu_offload_seq = "text_encoder->text_encoder_2->transformer->vae"
    _exclude_from_cpu_offload = ["controlnet"]
    _optional_components = ["controlnet"]
    _callback_tensor_inputs = ["latents", "prompt_embeds"]

    def __init__(self, scheduler, vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2, transformer,
                 controlnet: FluxControlNetModel | None = None) -> None:
        super().__init__(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                         text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer)
        self.register_modules(controlnet=controlnet)

    def enable_sequential_cpu_offload(self, gpu_id: int | None = None, device: Any = None) -> None:
        """Layer-by-layer offload of every component, the ControlNet included."""
        self._exclude_from_cpu_offload = []  # instance attribute: model offload keeps the class's list
        try:
            super().enable_sequential_cpu_offload(gpu_id=gpu_id, device=device)
        finally:
            del self._exclude_from_cpu_offload

    # ------------------------------------------------------------------------------------------
    def encode_control_image(self, control_image, width: int, height: int, batch: int,
                             device: torch.device) -> tuple[torch.Tensor, bool]:
        """Control image -> what the ControlNet takes (packed VAE latents, or pixels for XLabs)."""
        image = self.image_processor.preprocess(control_image, height=height, width=width)
        image = image.repeat_interleave(batch // image.shape[0], dim=0) if image.shape[0] < batch else image
        image = image.to(device=device, dtype=self.vae.dtype)
        controlnet = self.controlnet
        repeat = controlnet.input_hint_block is not None  # XLabs nets take pixels and repeat blocks
        if not repeat:
            latents = retrieve_latents(self.vae.encode(image), sample_mode="argmax")
            latents = (latents - self.vae.config.shift_factor) * self.vae.config.scaling_factor
            h, w = latents.shape[2:]
            image = self._pack_latents(latents, batch, self.vae.config.latent_channels, h, w)
        return image, repeat

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        prompt_2: str | list[str] | None = None,
        image=None,
        mask_image=None,
        height: int | None = None,
        width: int | None = None,
        strength: float = 1.0,
        num_inference_steps: int = 50,
        sigmas: list[float] | None = None,
        guidance_scale: float = 30.0,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.FloatTensor | None = None,
        prompt_embeds: torch.FloatTensor | None = None,
        pooled_prompt_embeds: torch.FloatTensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        joint_attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: StepCallback | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (diffusers' signature)
        max_sequence_length: int = 512,
        control_image=None,
        control_mode: int | None = None,
        controlnet_conditioning_scale: float = 1.0,
        control_guidance_start: float = 0.0,
        control_guidance_end: float = 1.0,
        controlnet_guidance_scale: float = 3.5,
    ):
        height = height or self.default_sample_size * self.vae_scale_factor
        width = width or self.default_sample_size * self.vae_scale_factor

        # 1. Check inputs (diffusers' checks, then ours for the ControlNet) before any compute.
        self.check_inputs(prompt, prompt_2, strength, height, width, prompt_embeds=prompt_embeds,
                          pooled_prompt_embeds=pooled_prompt_embeds,
                          callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
                          max_sequence_length=max_sequence_length, image=image, mask_image=mask_image,
                          masked_image_latents=None)
        if not 0.0 <= control_guidance_start <= control_guidance_end <= 1.0:
            raise ValueError("control_guidance_start/end must satisfy 0 <= start <= end <= 1, got "
                             f"{control_guidance_start}, {control_guidance_end}")
        use_control = self.controlnet is not None and control_image is not None \
            and controlnet_conditioning_scale != 0.0
        if use_control and getattr(self.controlnet, "union", False) and control_mode is None:
            raise ValueError("This Union ControlNet needs a control_mode (e.g. 4 = pose).")

        self._guidance_scale = guidance_scale
        self._joint_attention_kwargs = joint_attention_kwargs
        self._interrupt = False

        init_image = self.image_processor.preprocess(image, height=height, width=width)
        init_image = init_image.to(dtype=torch.float32)

        # 2. Call parameters
        if prompt is not None and isinstance(prompt, str):
            batch_size = 1
        elif prompt is not None and isinstance(prompt, list):
            batch_size = len(prompt)
        else:
            batch_size = prompt_embeds.shape[0]
        device = self._execution_device

        # 3. Prompt embeddings
        lora_scale = self.joint_attention_kwargs.get("scale", None) if self.joint_attention_kwargs else None
        prompt_embeds, pooled_prompt_embeds, text_ids = self.encode_prompt(
            prompt=prompt, prompt_2=prompt_2, prompt_embeds=prompt_embeds,
            pooled_prompt_embeds=pooled_prompt_embeds, device=device,
            num_images_per_prompt=num_images_per_prompt, max_sequence_length=max_sequence_length,
            lora_scale=lora_scale)

        # 4. Timesteps
        sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps) if sigmas is None else sigmas
        image_seq_len = (int(height) // self.vae_scale_factor // 2) * (int(width) // self.vae_scale_factor // 2)
        mu = calculate_shift(
            image_seq_len,
            self.scheduler.config.get("base_image_seq_len", 256),
            self.scheduler.config.get("max_image_seq_len", 4096),
            self.scheduler.config.get("base_shift", 0.5),
            self.scheduler.config.get("max_shift", 1.15),
        )
        timesteps, num_inference_steps = retrieve_timesteps(self.scheduler, num_inference_steps, device,
                                                            sigmas=sigmas, mu=mu)
        timesteps, num_inference_steps = self.get_timesteps(num_inference_steps, strength, device)
        if num_inference_steps < 1:
            raise ValueError(f"strength {strength} leaves {num_inference_steps} steps; need at least 1.")
        latent_timestep = timesteps[:1].repeat(batch_size * num_images_per_prompt)

        # 5. Latents
        num_channels_latents = self.vae.config.latent_channels
        latents, latent_image_ids = self.prepare_latents(
            init_image, latent_timestep, batch_size * num_images_per_prompt, num_channels_latents,
            height, width, prompt_embeds.dtype, device, generator, latents)

        # 6. Mask and masked-image latents (255 = regenerate, 0 = keep; binarised at 0.5)
        mask_image = self.mask_processor.preprocess(mask_image, height=height, width=width)
        masked_image = init_image * (1 - mask_image)
        masked_image = masked_image.to(device=device, dtype=prompt_embeds.dtype)
        height, width = init_image.shape[-2:]
        mask, masked_image_latents = self.prepare_mask_latents(
            mask_image, masked_image, batch_size, num_channels_latents, num_images_per_prompt,
            height, width, prompt_embeds.dtype, device, generator)
        masked_image_latents = torch.cat((masked_image_latents, mask), dim=-1)

        # 7. ControlNet inputs (after the Fill latents: the seed's noise is the same either way)
        keep = controlnet_keep(len(timesteps), control_guidance_start, control_guidance_end)
        use_control = use_control and any(keep)
        control_cond = mode_tensor = None
        blocks_repeat = False
        if use_control:
            control_cond, blocks_repeat = self.encode_control_image(
                control_image, width, height, batch_size * num_images_per_prompt, device)
            if control_mode is not None and getattr(self.controlnet, "union", False):
                mode_tensor = torch.full((batch_size * num_images_per_prompt, 1), int(control_mode),
                                         device=device, dtype=torch.long)

        num_warmup_steps = max(len(timesteps) - num_inference_steps * self.scheduler.order, 0)
        self._num_timesteps = len(timesteps)

        if self.transformer.config.guidance_embeds:
            guidance = torch.full([1], guidance_scale, device=device, dtype=torch.float32)
            guidance = guidance.expand(latents.shape[0])
        else:
            guidance = None
        cn_guidance = None
        if use_control and self.controlnet.config.guidance_embeds:
            # the ControlNet's own guidance, within its training range (Union Pro 2.0: 1..7), not
            # the Fill transformer's 30
            cn_guidance = torch.full([1], controlnet_guidance_scale, device=device, dtype=torch.float32)
            cn_guidance = cn_guidance.expand(latents.shape[0])

        # 8. Denoising loop (FluxFillPipeline's, plus the ControlNet residuals)
        with self.progress_bar(total=num_inference_steps) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue

                timestep = t.expand(latents.shape[0]).to(latents.dtype)

                block_samples = single_block_samples = None
                if use_control and keep[i] > 0.0:
                    block_samples, single_block_samples = self.controlnet(
                        hidden_states=latents,
                        controlnet_cond=control_cond,
                        controlnet_mode=mode_tensor,
                        conditioning_scale=controlnet_conditioning_scale * keep[i],
                        timestep=timestep / 1000,
                        guidance=cn_guidance,
                        pooled_projections=pooled_prompt_embeds,
                        encoder_hidden_states=prompt_embeds,
                        txt_ids=text_ids,
                        img_ids=latent_image_ids,
                        joint_attention_kwargs=self.joint_attention_kwargs,
                        return_dict=False,
                    )
                    block_samples = _on_device(block_samples, latents.device)
                    single_block_samples = _on_device(single_block_samples, latents.device)

                with _cache_context(self.transformer, "cond"):  # FluxPipeline's habit: caches need it
                    noise_pred = self.transformer(
                        hidden_states=torch.cat((latents, masked_image_latents), dim=2),
                        timestep=timestep / 1000,
                        guidance=guidance,
                        pooled_projections=pooled_prompt_embeds,
                        encoder_hidden_states=prompt_embeds,
                        controlnet_block_samples=block_samples,
                        controlnet_single_block_samples=single_block_samples,
                        controlnet_blocks_repeat=blocks_repeat,
                        txt_ids=text_ids,
                        img_ids=latent_image_ids,
                        joint_attention_kwargs=self.joint_attention_kwargs,
                        return_dict=False,
                    )[0]

                latents_dtype = latents.dtype
                latents = self.scheduler.step(noise_pred, t, latents, return_dict=False)[0]
                if latents.dtype != latents_dtype and torch.backends.mps.is_available():
                    latents = latents.to(latents_dtype)

                if callback_on_step_end is not None:
                    callback_kwargs = {}
                    local_values = {"latents": latents, "prompt_embeds": prompt_embeds}
                    for k in callback_on_step_end_tensor_inputs:
                        callback_kwargs[k] = local_values[k]
                    callback_outputs = callback_on_step_end(self, i, t, callback_kwargs) or {}
                    latents = callback_outputs.pop("latents", latents)
                    prompt_embeds = callback_outputs.pop("prompt_embeds", prompt_embeds)

                if i == len(timesteps) - 1 or ((i + 1) > num_warmup_steps and (i + 1) % self.scheduler.order == 0):
                    progress_bar.update()

        # 9. Decode
        if output_type == "latent":
            image = latents
        else:
            latents = self._unpack_latents(latents, height, width, self.vae_scale_factor)
            latents = (latents / self.vae.config.scaling_factor) + self.vae.config.shift_factor
            image = self.vae.decode(latents, return_dict=False)[0]
            image = self.image_processor.postprocess(image, output_type=output_type)

        self.maybe_free_model_hooks()
        if not return_dict:
            return (image,)
        return FluxPipelineOutput(images=image)


def _cache_context(transformer, name: str):
    """`transformer.cache_context(name)` (diffusers' CacheMixin: First Block Cache, TaylorSeer...
    need it set around each denoiser call), or nothing for a transformer without it."""
    from contextlib import nullcontext

    ctx = getattr(transformer, "cache_context", None)
    return ctx(name) if callable(ctx) else nullcontext()


def _on_device(samples, device: torch.device):
    """Residuals from a ControlNet on another device (offload plans) are moved next to the latents."""
    if samples is None:
        return None
    return [s.to(device) for s in samples]
